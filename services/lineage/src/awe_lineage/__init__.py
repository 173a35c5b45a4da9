"""AWE lineage service: every object as a node, every reference as an edge."""
