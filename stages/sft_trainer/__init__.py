"""The sft-trainer stage: GT-SFT, SF-SFT and CF-SFT. The three methods differ only in which `sft_data` artifact
they train on; the stage trains with verl's `sft_trainer` at scale or with the native engine.
"""
