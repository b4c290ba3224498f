"""The CDK app for aiplane: one construct per capability, stacks per environment."""
