"""Recipes: each a readable sequence of the stages in stages/, one module per recipe."""
