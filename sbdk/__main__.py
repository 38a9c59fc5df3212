from sbdk.cli.app import main

main()
