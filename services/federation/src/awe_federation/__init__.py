"""AWE federation: each site follows its peers' catalog changes and applies them locally."""
