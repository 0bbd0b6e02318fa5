"""Starting the processes a stage needs beside itself: torchrun jobs of the native engine and vLLM servers.

Why here: the trainers that run the native engine on several GPUs (sft-trainer, spin) start torchrun, forward stop
signals to it and wait for it the same way, and a stage never imports another; a vLLM server for generation between
training phases is started and stopped the same way by whichever stage needs one.

- `torchrun`        the torchrun command (one node standalone, several through srun + c10d) and the workers' env
- `process_group`   a child job in its own process group: stop-signal forwarding, bounded waits, log tails
- `vllm_server`     a vLLM OpenAI-compatible server on a model folder (this Python or ``$FLLM_VLLM_PYTHON``)
"""
