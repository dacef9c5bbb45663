"""tamperwatch: find and explain impairments of macOS security tooling in endpoint telemetry."""

__version__ = "0.1.0"
