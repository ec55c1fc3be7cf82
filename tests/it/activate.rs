//! End-to-end tests of the `activate` recipe(s): written with the recipe.
