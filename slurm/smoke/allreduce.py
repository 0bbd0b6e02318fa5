"""All-reduce bus bandwidth across the ranks of a torchrun job, and the network NCCL chose: the collective half of
the per-cluster smoke job (two-node.sbatch), run once per cluster before a study.

Why: across nodes NCCL silently falls back to TCP sockets when the image lacks libibverbs or ``/dev/infiniband``
is not visible (4-40x slower collectives; reference/scale.md §4.2), and nothing fails: training is just slow. So
each rank writes NCCL's INFO log of its initialisation to a file of its own, and the log says which network NCCL
took (``NET/IB`` or ``NET/Socket``). Across hosts, sockets fail the check (exit 3) unless ``--allow-socket`` says the
cluster has no InfiniBand. Bus bandwidth follows nccl-tests: ``algbw = bytes / time``, ``busbw = algbw * 2(n-1)/n``,
with the slowest rank's time.

    torchrun --nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d --rdzv-endpoint=HEAD:29500 allreduce.py --out r.json

``--backend gloo`` (the default without CUDA) runs the same path on CPUs. Exit codes: 0 fine, 1 an error, 2 bad
arguments, 3 NCCL fell back to sockets across hosts, 4 bus bandwidth under ``--min-busbw``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

USING_NETWORK = re.compile(r"Using network (\S+)")
CHANNEL_VIA = re.compile(r"\bvia (\S+)")


def _transport(via: str) -> str:
    """``NET/IB/0/GDRDMA`` -> ``NET/IB``; ``P2P/CUMEM/read`` -> ``P2P``; ``SHM/direct/direct`` -> ``SHM``."""
    parts = via.split("/")
    return "/".join(parts[:2]) if parts[0] == "NET" and len(parts) > 1 else parts[0]


def nccl_network(log: str) -> dict:
    """What an NCCL_DEBUG=INFO log says about the transports: the network plugin NCCL chose ("IB", "Socket", ...,
    or None when it never set one up), the channel transports (``via NET/IB/0``, ``via P2P/IPC``, ``via SHM``), and
    the lines that explain a fall-back to sockets."""
    chosen = USING_NETWORK.findall(log)
    via = sorted({_transport(m) for m in CHANNEL_VIA.findall(log)})
    nets = [v.split("/", 1)[1] for v in via if v.startswith("NET/")]
    network = chosen[-1] if chosen else (nets[0] if nets else None)
    why = [line.strip() for line in log.splitlines()
           if ("NET/IB" in line and ("No device" in line or "Unable" in line or "fail" in line.lower()))
           or "libibverbs" in line]
    return {"network": network, "via": via, "ib_notes": why[:5]}


def rank_facts() -> dict:
    """This rank's host and what it offers InfiniBand: libibverbs loadable, /dev/infiniband devices."""
    try:
        ctypes.CDLL("libibverbs.so.1")
        verbs = True
    except OSError:
        verbs = False
    ib = Path("/dev/infiniband")
    return {
        "host": socket.gethostname(),
        "libibverbs": verbs,
        "dev_infiniband": sorted(p.name for p in ib.iterdir()) if ib.is_dir() else [],
        "shm_free_gb": round(shutil.disk_usage("/dev/shm").free / 1e9, 2) if Path("/dev/shm").is_dir() else None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["auto", "nccl", "gloo"], default="auto")
    ap.add_argument("--sizes-mb", default="", help="comma-separated message sizes in MB (default: by backend)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", type=Path, help="rank 0 writes the result here (JSON)")
    ap.add_argument("--log-dir", type=Path, help="where each rank's NCCL log goes (default: beside --out)")
    ap.add_argument("--allow-socket", action="store_true", help="a cluster without InfiniBand: sockets are fine")
    ap.add_argument("--min-busbw", type=float, default=0.0, help="GB/s the largest message must reach")
    args = ap.parse_args(argv)
    try:
        args.sizes = [float(x) for x in args.sizes_mb.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--sizes-mb {args.sizes_mb!r} is not a comma-separated list of numbers")
    if any(s <= 0 for s in args.sizes) or args.iters < 1 or args.warmup < 0:
        ap.error("sizes must be > 0, --iters >= 1, --warmup >= 0")
    return args


def timed_allreduce(dist, torch, nbytes: int, device, iters: int, warmup: int) -> float:
    """Seconds per all-reduce of ``nbytes`` (float32), the slowest rank's."""
    x = torch.ones(max(1, nbytes // 4), dtype=torch.float32, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        dist.all_reduce(x)
    sync()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(x)
    sync()
    elapsed = torch.tensor([(time.perf_counter() - start) / iters], dtype=torch.float64, device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    return float(elapsed.item())


def _nccl_version(torch) -> str:
    version = torch.cuda.nccl.version()
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def verdict(result: dict, allow_socket: bool, min_busbw: float) -> tuple[int, str]:
    hosts = {f["host"] for f in result["ranks"]}
    net = result["nccl"]["network"] if result["nccl"] else None
    if result["backend"] == "nccl" and len(hosts) > 1 and net == "Socket" and not allow_socket:
        missing = [f["host"] for f in result["ranks"] if not f["libibverbs"] or not f["dev_infiniband"]]
        return 3, ("NCCL fell back to TCP sockets (NET/Socket) between nodes: collectives will be several times "
                   "slower. " + (f"No libibverbs or /dev/infiniband on {', '.join(sorted(set(missing)))}; " if
                                 missing else "") + "check the image (images/base/Dockerfile installs libibverbs1 "
                   "ibverbs-providers), that Apptainer sees /dev/infiniband, and NCCL_IB_HCA / NCCL_SOCKET_IFNAME; "
                   "or pass --allow-socket on a cluster without InfiniBand")
    top = result["results"][-1]["busbw_gbs"] if result["results"] else 0.0
    if top < min_busbw:
        return 4, f"bus bandwidth {top:.2f} GB/s at the largest message is under --min-busbw {min_busbw}"
    if result["backend"] == "nccl" and len(hosts) > 1 and net is None:
        return 0, "ok, but NCCL's log names no network: check the transport by hand (NCCL_DEBUG=INFO)"
    return 0, "ok"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        print("allreduce.py: run it under torchrun (RANK and WORLD_SIZE are unset)", file=sys.stderr)
        return 2
    import torch
    import torch.distributed as dist

    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        print("allreduce.py: --backend nccl needs CUDA GPUs; this rank sees none", file=sys.stderr)
        return 2
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    log_dir = args.log_dir or (args.out.parent / "nccl" if args.out else Path("nccl-logs"))
    nccl_log = log_dir / f"nccl-rank{rank}.log"
    if backend == "nccl":  # NCCL reads these when the communicator is created, after this point
        log_dir.mkdir(parents=True, exist_ok=True)
        os.environ["NCCL_DEBUG"] = "INFO"
        os.environ["NCCL_DEBUG_SUBSYS"] = "INIT,NET"
        os.environ["NCCL_DEBUG_FILE"] = str(nccl_log)
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    sizes = args.sizes or ([1, 16, 256, 1024] if backend == "nccl" else [1, 8])
    dist.init_process_group(backend, device_id=device if backend == "nccl" else None)
    try:
        rows = []
        for mb in sizes:
            nbytes = int(mb * 2**20)
            seconds = timed_allreduce(dist, torch, nbytes, device, args.iters, args.warmup)
            algbw = nbytes / seconds / 1e9
            rows.append({"size_bytes": nbytes, "seconds": seconds, "algbw_gbs": round(algbw, 3),
                         "busbw_gbs": round(algbw * 2 * (world - 1) / world, 3)})
        facts = rank_facts()
        if backend == "nccl":
            facts["nccl"] = nccl_network(nccl_log.read_text(errors="replace") if nccl_log.is_file() else "")
        gathered: list = [None] * world
        dist.all_gather_object(gathered, facts)
    finally:
        dist.destroy_process_group()
    nets = [f["nccl"] for f in gathered if f.get("nccl")]
    result = {
        "backend": backend, "world_size": world, "hosts": sorted({f["host"] for f in gathered}),
        "nccl_version": _nccl_version(torch) if backend == "nccl" else None,
        "nccl": ({"network": next((n["network"] for n in nets if n["network"]), None),
                  "via": sorted({v for n in nets for v in n["via"]}),
                  "ib_notes": sorted({x for n in nets for x in n["ib_notes"]})[:5]} if nets else None),
        "ranks": [{k: v for k, v in f.items() if k != "nccl"} for f in gathered],
        "results": rows,
    }
    code, message = verdict(result, args.allow_socket, args.min_busbw)
    result.update(ok=code == 0, message=message)
    if rank == 0:
        for row in rows:
            print(f"allreduce: {row['size_bytes'] / 2**20:8.1f} MB  {row['seconds'] * 1e3:9.3f} ms  "
                  f"algbw {row['algbw_gbs']:8.2f} GB/s  busbw {row['busbw_gbs']:8.2f} GB/s")
        net = result["nccl"]["network"] if result["nccl"] else f"{backend} (no NCCL)"
        print(f"allreduce: {backend} over {world} rank(s) on {len(result['hosts'])} host(s); network {net}; "
              f"{'OK' if code == 0 else 'FAILED'}: {message}", flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
