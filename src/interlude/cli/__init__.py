"""The ``interlude`` command: one click group and its subcommands, registered explicitly."""
