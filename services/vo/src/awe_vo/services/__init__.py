"""The rules of the VO service: ADQL to SQL, TAP queries, async jobs."""
