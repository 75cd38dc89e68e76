"""The inspection schedule: what each risk level makes due, and turning it into tasks."""
