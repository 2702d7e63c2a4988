from .cli import main

# Guarded: engines that start worker processes by "spawn" (vLLM) import this module again.
if __name__ == "__main__":
    main()
