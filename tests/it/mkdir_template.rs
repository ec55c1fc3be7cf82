//! End-to-end tests of the `mkdir_template` recipe(s): written with the recipe.
