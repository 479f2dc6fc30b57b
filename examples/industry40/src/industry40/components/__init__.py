"""The industry40 components: factory simulators and chaos."""
