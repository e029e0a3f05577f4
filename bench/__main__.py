"""``make bench``: the benchmarks, each printed next to a baseline measured in the same run."""

print("no benchmarks yet")
