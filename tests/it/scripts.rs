//! End-to-end tests of the `scripts` recipe(s): written with the recipe.
