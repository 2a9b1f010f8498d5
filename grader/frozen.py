"""Imported last by each fork server (warm.py), after the heavy modules: moves every object they made out of
the garbage collector's reach, for good.

Each process forked from the server (a pool worker, a sandbox) would otherwise have the collector walk those
objects, writing to every page that holds one, and so copy the server's memory page by page. Frozen, they are
shared until the child itself writes to them.
"""
import gc

gc.freeze()
