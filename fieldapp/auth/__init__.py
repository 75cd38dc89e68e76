"""Users, devices, tokens, and the access policy that scopes every read and write."""
