import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the kit is still loading: nothing has started yet
    print("\nInterrupted before anything started.", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
