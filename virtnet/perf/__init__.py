"""`virtnet perf`: the walkthrough's network profiling (iperf3 and ping), per NIC and path on purpose."""
