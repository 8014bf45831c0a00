"""A local HTTPS stand-in for the Azure APIs the jobs call. Development only."""
