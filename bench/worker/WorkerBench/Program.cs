using System.Diagnostics;
using System.Globalization;
using Farm.Containers.Sandbox;
using Farm.Containers.Snapshots;
using Farm.Contracts;
using Farm.Oci.Layers;
using Farm.Oci.Stores;
using Farm.Worker;
using Farm.Worker.Jobs;

// Worker benchmarks, driven by bench/worker/run.sh:
//   steps ROOTFS STATE N        N jobs "RUN true" on ROOTFS through LayerJobExecutor; prints each and the median (ms)
//   prepare-diff ROOTFS STATE   runs a step writing 2000 files (~200 MB) in an overlay; prints the sealed upperdir
//   write-upper UPPER OUT       LayerWriter over an upperdir to a gzip layer
var inv = CultureInfo.InvariantCulture;
switch (args)
{
    case ["steps", var rootfs, var state, var count]:
    {
        var n = int.Parse(count, inv);
        var storeAddress = "oci-layout:" + Path.Combine(state, "store");
        using var stores = new BlobStoreLocator();
        var store = await stores.OpenAsync(storeAddress, CancellationToken.None);
        var file = Path.Combine(state, "base.tar.gz");
        LayerResult written;
        await using (var stream = File.Create(file))
        {
            written = await LayerWriter.WriteDirectoryAsync(rootfs, stream, new LayerWriteOptions(), CancellationToken.None);
        }

        await using (var stream = File.OpenRead(file))
        {
            await store.PutAsync(written.Descriptor, stream, CancellationToken.None);
        }

        var parent = new LayerRef(written.Descriptor.Digest.ToString(), written.DiffId.ToString(), written.Descriptor.MediaType, written.Descriptor.Size);
        using var executor = new LayerJobExecutor(new WorkerOptions { Name = "bench", StateDirectory = Path.Combine(state, "w") }, stores);
        var times = new List<double>();
        for (var i = -1; i < n; i++)
        {
            var job = new BuildLayer
            {
                JobId = Guid.NewGuid(),
                BuildId = Guid.NewGuid(),
                StepId = "bench",
                CacheKey = "bench",
                BlobStore = storeAddress,
                Parents = [parent],
                Step = new LayerStep { Kind = StepKind.Run, Display = "RUN true", Run = new RunStep { Args = ["/bin/sh", "-c", "true"] } },
            };
            var clock = Stopwatch.StartNew();
            var result = await executor.ExecuteAsync(job, (_, _) => Task.CompletedTask, CancellationToken.None);
            clock.Stop();
            if (result.Layer is not null)
            {
                throw new InvalidOperationException("RUN true produced a layer; the benchmark expects an empty diff.");
            }

            // The first job extracts the base layer (buildah has it in its storage already): a warm-up.
            if (i >= 0)
            {
                times.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        times.Sort();
        var median = n % 2 == 1 ? times[n / 2] : (times[(n / 2) - 1] + times[n / 2]) / 2;
        Console.WriteLine(string.Join(' ', times.Select(t => t.ToString("F1", inv))));
        Console.WriteLine(string.Create(inv, $"median_ms {median:F1}"));
        break;
    }

    case ["prepare-diff", var rootfs, var state]:
    {
        var snapshotter = new OverlaySnapshotter(Path.Combine(state, "ov"));
        var runner = new SandboxRunner(new SandboxRunnerOptions { StateDirectory = Path.Combine(state, "run") });
        var snapshot = await snapshotter.CreateAsync([rootfs], CancellationToken.None);
        // 2000 files of 76800 random bytes in base64 (~104 KB each): as compressible as typical build output is not,
        // but not incompressible either.
        var result = await runner.RunAsync(
            new RunSpec
            {
                Args = ["/bin/sh", "-c", "mkdir -p /data && i=0; while [ $i -lt 2000 ]; do head -c 76800 /dev/urandom | base64 > /data/f$i; i=$((i+1)); done"],
                RootfsPath = snapshot.MergedDir,
                UpperDir = snapshot.UpperDir,
            },
            null,
            CancellationToken.None);
        snapshot.Seal(result.MountStubs);
        Console.WriteLine(snapshot.UpperDir);
        break;
    }

    case ["write-upper", var upper, var output]:
    {
        await using var stream = File.Create(output);
        var result = await LayerWriter.WriteUpperDirAsync(upper, stream, new LayerWriteOptions(), CancellationToken.None);
        Console.Error.WriteLine(string.Create(inv, $"{result.EntryCount} entries, {result.UncompressedSize} bytes -> {result.Descriptor.Size} bytes"));
        break;
    }

    default:
        Console.Error.WriteLine("usage: WorkerBench steps ROOTFS STATE N | prepare-diff ROOTFS STATE | write-upper UPPER OUT");
        return 2;
}

return 0;
