from steps.cli.app import main

main()
