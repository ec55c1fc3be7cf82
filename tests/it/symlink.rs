//! End-to-end tests of the `symlink` recipe(s): written with the recipe.
