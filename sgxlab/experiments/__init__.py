"""Experiments that combine the layers below: the policy matrix."""
