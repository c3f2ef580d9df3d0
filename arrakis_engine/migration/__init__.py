"""Moving data in from older Arrakis stores."""
