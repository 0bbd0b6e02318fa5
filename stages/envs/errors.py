"""Errors for bad input to `stages.envs`: all subclass ValueError, so the core maps them to exit code 2."""

from __future__ import annotations


class EnvError(ValueError):
    """Base class: something the caller passed in (an id, a folder, a ground truth) is wrong."""


class UnknownEnvError(EnvError):
    """An env id or domain this project does not know."""


class DatasetLayoutError(EnvError):
    """A `gem_dataset` folder that is missing, lacks the split, has the wrong columns or is empty."""


class GroundTruthError(EnvError):
    """A ground truth that does not have the shape its domain needs."""


class TemplateError(EnvError):
    """An unknown prompt template version."""
