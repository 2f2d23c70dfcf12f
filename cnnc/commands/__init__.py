"""One module per `cnnc` subcommand: HELP, add_arguments(parser), run(args) -> exit code."""
