from setuptools import find_packages, setup

setup(
    name="greeter",
    version="1.0",
    description="The example project of rbuildout's examples/buildout-project",
    package_dir={"": "src"},
    packages=find_packages("src"),
    entry_points={"console_scripts": ["greeter = greeter.cli:main"]},
)
