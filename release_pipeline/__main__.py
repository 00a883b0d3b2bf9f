from release_pipeline.cli.app import main

main()
