//! End-to-end tests of the `egg` recipe(s): written with the recipe.
