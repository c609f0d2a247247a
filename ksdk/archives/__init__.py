"""Archives: SQLite persistence of every candidate and verdict; parent and inspiration selection."""
