"""Tests that `bin/test` (zc.recipe.testrunner) finds and runs."""

import os
import tempfile
import unittest

from greeter import greeting


class GreetingTests(unittest.TestCase):
    def config(self, text):
        handle, path = tempfile.mkstemp(suffix=".ini")
        with os.fdopen(handle, "w") as f:
            f.write(text)
        self.addCleanup(os.remove, path)
        return path

    def test_greeting_comes_from_the_config(self):
        path = self.config("[greeter]\ngreeting = hi\n")
        self.assertEqual(greeting(path), "hi")

    def test_admins_are_marked(self):
        path = self.config("[greeter]\ngreeting = hi\n")
        self.assertEqual(greeting(path, admin=True), "hi (admin)")

    def test_a_missing_config_is_an_error(self):
        with self.assertRaises(SystemExit):
            greeting("/nonexistent/greeter.ini")
