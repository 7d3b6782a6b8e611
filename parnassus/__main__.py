from parnassus.cli import main

main()
