from aiplane_agent.agent import main

main()
