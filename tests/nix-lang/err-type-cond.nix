if "yes" then 1 else 2
