from busdoc.cli import main

main()
