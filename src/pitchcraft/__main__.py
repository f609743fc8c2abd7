from pitchcraft.cli import main

main()
