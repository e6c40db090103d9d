mkdir -p /tmp/sw
export PYTHONPATH=$PWD/src
ST="python -m selftaught.cli"
base="-s model.device=cuda -s run.time_budget_minutes=0 -s run.rounds=18 -s run.stop_at_reach=22"
i=0
while read -r line; do
  i=$((i+1))
  (OMP_NUM_THREADS=1 $ST run recipes/sit-addition.toml --out /tmp/sw/run$i $base $line > /tmp/sw/log$i.txt 2>&1; echo "== $i: $line" > /tmp/sw/sum$i.txt; $ST summary /tmp/sw/run$i >> /tmp/sw/sum$i.txt 2>&1; tail -3 /tmp/sw/log$i.txt >> /tmp/sw/sum$i.txt) &
done < sweep.txt
wait
cat /tmp/sw/sum*.txt > $OUT/all.txt
cat $OUT/all.txt
