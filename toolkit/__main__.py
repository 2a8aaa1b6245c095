from medtk.cli import main

main()
