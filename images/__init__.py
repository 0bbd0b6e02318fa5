"""Container images of the stages: definitions (one Dockerfile per stage on a shared base), per-stage locks, and
the tools that build, lock, check and convert them. Not part of the installed package: these modules run from the
repository root (``python -m images.check``) and from ``images/*.sh``.
"""
