"""Development Asterisk (a cached root file system) and the AMI client behind `hamta-ivr dial`."""
