from intern.cli import main

main()
