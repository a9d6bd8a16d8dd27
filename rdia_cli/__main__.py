from rdia_cli.cli import main

main()
