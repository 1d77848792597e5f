{ double = x: x * 2; name = "imported"; }
