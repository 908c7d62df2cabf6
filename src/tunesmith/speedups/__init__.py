"""CPU speed patches behind one switch (training.cpu_speedups)."""
