"""Read-model projections: a pure ``apply`` per read model plus the SQL that stores its rows."""
