from doorwarden.cli import main

main()
