"""The OEE line's components: gateway (OPC UA -> Sparkplug), historian (Sparkplug -> storage), oee."""
