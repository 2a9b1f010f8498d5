"""Stage 2, run: a notebook's cells run in a sandbox (execute: the runner and its parent; sandbox: namespaces,
mounts, seccomp; memory: cgroups and the watch; calls: the student's functions called again inside, for the
judge), from warm fork servers (warm, frozen), figures kept off screen (plot_backend). Nothing here trusts what
the student's process sends back: it arrives as plain data, capped (core.wire). Imports core only.
"""
__all__ = ["execute", "sandbox", "memory", "warm", "frozen", "plot_backend", "calls"]
