using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;

namespace Farm.Fuzzing;

/// <summary>
/// Something to fuzz: where its inputs start (valid ones, from a corpus), how one is changed, and what running one
/// must look like. <see cref="Run"/> returns the outcome (<c>ok</c> or the FARM code the input was refused with);
/// an exception out of it, or a FARM code that is not in the catalogue, is a finding.
/// </summary>
public interface IFuzzTarget
{
    /// <summary>Short name, used in file names of saved inputs.</summary>
    string Name { get; }

    /// <summary>Extension of a saved input (<c>Dockerfile</c>, <c>json</c>).</summary>
    string Extension { get; }

    /// <summary>The seed corpus: valid (or interesting) inputs the mutations start from.</summary>
    IReadOnlyList<byte[]> Seeds { get; }

    /// <summary>A changed copy of <paramref name="input"/>; <paramref name="random"/> is the only source of chance.</summary>
    byte[] Mutate(byte[] input, Random random, FuzzScale scale);

    /// <summary>Runs the input through the code under test.</summary>
    /// <returns><c>ok</c>, or the code of the <see cref="FarmException"/> (or the mapped refusal) it ended with.</returns>
    string Run(byte[] input);
}

/// <summary>How big the generated structures get: the tests keep inputs small, the bench goes to the limits.</summary>
public sealed record FuzzScale(int MaxRepeat, int MaxBytes)
{
    /// <summary>For unit tests: thousands of inputs in seconds.</summary>
    public static FuzzScale Small { get; } = new(2_000, 256 * 1024);

    /// <summary>For bench/fuzz: deep nesting, megabyte lines, tens of thousands of continuation lines.</summary>
    public static FuzzScale Large { get; } = new(200_000, 4 * 1024 * 1024);
}

/// <summary>What a run is asked to do. Everything is derived from <see cref="Seed"/>: the same options give the same inputs.</summary>
public sealed record FuzzOptions
{
    public required int Seed { get; init; }

    public required int Iterations { get; init; }

    public FuzzScale Scale { get; init; } = FuzzScale.Small;

    /// <summary>An input that runs longer than this is a hang: it is saved and the run stops waiting for it.</summary>
    public TimeSpan PerInputLimit { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Where failing inputs (and the one in flight, in case the process dies) are written.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>The run stops after this many findings.</summary>
    public int MaxFindings { get; init; } = 20;

    /// <summary>Writes each input to <c>NAME.in-flight</c> before running it, so a crash that kills the process (a stack overflow) leaves it behind.</summary>
    public bool SaveInFlight { get; init; } = true;
}

/// <summary>One input that broke a property: where it was saved and what happened.</summary>
public sealed record FuzzFinding(long Iteration, string Kind, string InputPath, string Summary);

/// <summary>The figures of a run.</summary>
public sealed record FuzzReport(
    string Target,
    int Seed,
    long Inputs,
    TimeSpan Elapsed,
    long Bytes,
    TimeSpan Slowest,
    long SlowestIteration,
    int SlowestLength,
    IReadOnlyDictionary<string, long> Outcomes,
    IReadOnlyList<FuzzFinding> Findings)
{
    public double InputsPerSecond => Inputs / Math.Max(Elapsed.TotalSeconds, 1e-9);

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Target}: seed {Seed}, {Inputs} inputs in {Elapsed.TotalSeconds:F1} s ({InputsPerSecond:F0}/s, {Bytes / 1e6:F1} MB), ");
        sb.Append(CultureInfo.InvariantCulture, $"slowest {Slowest.TotalMilliseconds:F0} ms (iteration {SlowestIteration}, {SlowestLength} bytes), {Findings.Count} findings");
        foreach (var finding in Findings)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n  {finding.Kind} at iteration {finding.Iteration}: {finding.Summary}\n    input: {finding.InputPath}");
        }

        return sb.ToString();
    }
}

/// <summary>
/// The seeded mutational fuzzer. Iteration <c>i</c> of seed <c>s</c> draws everything from <c>Random(hash(s, i))</c>:
/// it picks a corpus entry, applies one to four mutations, and runs the result on a worker thread, waiting at most
/// <see cref="FuzzOptions.PerInputLimit"/>. Properties: the target returns <c>ok</c> or a catalogued FARM code, never
/// another exception, and never takes longer than the limit. A failing input is saved under
/// <see cref="FuzzOptions.OutputDirectory"/> with a note beside it, so <see cref="Replay"/> reproduces it.
/// Written here rather than with SharpFuzz: that needs AFL or libFuzzer instrumentation and a process per run; a seeded
/// harness runs inside xunit, on any machine, and repeats itself exactly.
/// </summary>
public static class FuzzRunner
{
    private static readonly Lazy<HashSet<string>> Catalogue = new(() =>
        typeof(FarmErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToHashSet(StringComparer.Ordinal));

    /// <summary>The <see cref="Random"/> of one iteration: the same for the same seed and iteration, on any machine.</summary>
    public static Random RandomFor(int seed, long iteration)
    {
        Span<byte> key = stackalloc byte[12];
        BitConverter.TryWriteBytes(key, seed);
        BitConverter.TryWriteBytes(key[4..], iteration);
        return new Random(BitConverter.ToInt32(SHA256.HashData(key)));
    }

    /// <summary>The input of iteration <paramref name="iteration"/>: the same bytes every time.</summary>
    public static byte[] InputFor(IFuzzTarget target, int seed, long iteration, FuzzScale scale)
    {
        ArgumentNullException.ThrowIfNull(target);
        var random = RandomFor(seed, iteration);
        var input = target.Seeds[random.Next(target.Seeds.Count)];
        var rounds = 1 + random.Next(4);
        for (var r = 0; r < rounds; r++)
        {
            input = target.Mutate(input, random, scale);
            if (input.Length > scale.MaxBytes)
            {
                input = input[..scale.MaxBytes];
            }
        }

        return input;
    }

    public static FuzzReport Run(IFuzzTarget target, FuzzOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.OutputDirectory);
        var inFlight = Path.Combine(options.OutputDirectory, $"{target.Name}-seed{options.Seed}.in-flight");
        var outcomes = new Dictionary<string, long>(StringComparer.Ordinal);
        var findings = new List<FuzzFinding>();
        using var worker = new FuzzWorker();
        var total = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        long slowestIteration = -1, bytes = 0, inputs = 0;
        var slowestLength = 0;
        var nextProgress = TimeSpan.FromSeconds(10);
        for (long i = 0; i < options.Iterations && findings.Count < options.MaxFindings; i++)
        {
            var input = i < target.Seeds.Count ? target.Seeds[(int)i] : InputFor(target, options.Seed, i, options.Scale);
            if (options.SaveInFlight)
            {
                File.WriteAllBytes(inFlight, input);
            }

            var (outcome, error, elapsed, finished) = worker.Run(target, input, options.PerInputLimit);
            inputs++;
            bytes += input.Length;
            if (elapsed > slowest)
            {
                (slowest, slowestIteration, slowestLength) = (elapsed, i, input.Length);
            }

            string? problem = null, kind = null;
            if (!finished)
            {
                (kind, problem) = ("hang", $"no answer within {options.PerInputLimit.TotalSeconds:F0} s");
            }
            else if (error is not null)
            {
                (kind, problem) = ("crash", $"{error.GetType().FullName}: {error.Message}");
            }
            else if (outcome != "ok" && !Catalogue.Value.Contains(outcome!))
            {
                (kind, problem) = ("uncatalogued", $"outcome '{outcome}' is neither ok nor a code of FarmErrorCodes");
            }

            if (kind is not null)
            {
                findings.Add(Save(target, options, i, input, kind, problem!, error));
                outcome = kind;
            }

            outcomes[outcome!] = outcomes.GetValueOrDefault(outcome!) + 1;
            if (progress is not null && total.Elapsed > nextProgress)
            {
                progress($"{target.Name}: {inputs} inputs, {inputs / total.Elapsed.TotalSeconds:F0}/s, {findings.Count} findings");
                nextProgress += TimeSpan.FromSeconds(10);
            }
        }

        total.Stop();
        if (options.SaveInFlight)
        {
            File.Delete(inFlight);
        }

        return new FuzzReport(target.Name, options.Seed, inputs, total.Elapsed, bytes, slowest, slowestIteration, slowestLength, outcomes, findings);
    }

    /// <summary>Runs one saved input again, as the run did, and returns its outcome (or throws what it threw).</summary>
    public static string Replay(IFuzzTarget target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(target);
        return target.Run(input);
    }

    private static FuzzFinding Save(IFuzzTarget target, FuzzOptions options, long iteration, byte[] input, string kind, string problem, Exception? error)
    {
        var path = Path.Combine(options.OutputDirectory, $"{target.Name}-seed{options.Seed}-iter{iteration}.{target.Extension}");
        File.WriteAllBytes(path, input);
        File.WriteAllText(path + ".txt", $"{kind}: {problem}\ntarget {target.Name}, seed {options.Seed}, iteration {iteration}, {input.Length} bytes\n\n{error}\n");
        return new FuzzFinding(iteration, kind, path, problem.Length > 300 ? problem[..300] + "..." : problem);
    }

    /// <summary>
    /// One thread that runs inputs, so the caller can stop waiting for one that hangs. A hung thread is abandoned (it is
    /// a background thread) and the next input gets a new one. The default stack size, as on the thread pool where the
    /// coordinator plans builds.
    /// </summary>
    private sealed class FuzzWorker : IDisposable
    {
        private Thread? _thread;
        private readonly object _gate = new();
        private Job? _job;
        private SemaphoreSlim _start = new(0);

        private sealed class Job(IFuzzTarget target, byte[] input)
        {
            public IFuzzTarget Target { get; } = target;
            public byte[] Input { get; } = input;
            public string? Outcome { get; set; }
            public Exception? Error { get; set; }
            public TimeSpan Elapsed { get; set; }
            public ManualResetEventSlim Done { get; } = new();
        }

        public (string? Outcome, Exception? Error, TimeSpan Elapsed, bool Finished) Run(IFuzzTarget target, byte[] input, TimeSpan limit)
        {
            EnsureThread();
            var job = new Job(target, input);
            lock (_gate)
            {
                _job = job;
            }

            var clock = Stopwatch.StartNew();
            _start.Release();
            if (!job.Done.Wait(limit))
            {
                // Abandon the thread that holds the hung input; a new one takes the next.
                _thread = null;
                _start = new SemaphoreSlim(0);
                return (null, null, clock.Elapsed, false);
            }

            return (job.Outcome, job.Error, job.Elapsed, true);
        }

        private void EnsureThread()
        {
            if (_thread is not null)
            {
                return;
            }

            var start = _start;
            _thread = new Thread(() => Loop(start)) { IsBackground = true, Name = "fuzz-worker" };
            _thread.Start();
        }

        private void Loop(SemaphoreSlim start)
        {
            while (true)
            {
                start.Wait();
                Job? job;
                lock (_gate)
                {
                    job = _job;
                    _job = null;
                }

                if (job is null)
                {
                    return;
                }

                var clock = Stopwatch.StartNew();
                try
                {
                    job.Outcome = job.Target.Run(job.Input);
                }
                catch (Exception e)
                {
                    job.Error = e;
                }

                job.Elapsed = clock.Elapsed;
                job.Done.Set();
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _job = null;
            }

            _start.Release();
        }
    }
}
