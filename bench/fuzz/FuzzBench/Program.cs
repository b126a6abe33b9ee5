using System.Globalization;
using Farm.Fuzzing;

// farm fuzz bench: FuzzBench TARGET ITERATIONS SEED OUTDIR [small|large] [LIMIT_SECONDS]
//                  FuzzBench replay TARGET FILE
// Prints the report; exits 1 when a property broke (the inputs are saved in OUTDIR).
if (args is ["replay", var name, var file])
{
    var replayed = Target(name);
    Console.WriteLine(FuzzRunner.Replay(replayed, File.ReadAllBytes(file)));
    return 0;
}

if (args.Length < 4)
{
    Console.Error.WriteLine("usage: FuzzBench dockerfile|submission ITERATIONS SEED OUTDIR [small|large] [LIMIT_SECONDS] | replay TARGET FILE");
    return 2;
}

var target = Target(args[0]);
var options = new FuzzOptions
{
    Iterations = int.Parse(args[1], CultureInfo.InvariantCulture),
    Seed = int.Parse(args[2], CultureInfo.InvariantCulture),
    OutputDirectory = args[3],
    Scale = args.Length > 4 && args[4] == "small" ? FuzzScale.Small : FuzzScale.Large,
    PerInputLimit = TimeSpan.FromSeconds(args.Length > 5 ? double.Parse(args[5], CultureInfo.InvariantCulture) : 10),
};
var report = FuzzRunner.Run(target, options, Console.Error.WriteLine);
Console.WriteLine(report);
Console.WriteLine("outcomes: " + string.Join(", ", report.Outcomes.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value}")));
return report.Findings.Count == 0 ? 0 : 1;

static IFuzzTarget Target(string name) => name switch
{
    "dockerfile" => new DockerfileFuzzTarget(),
    "submission" => new SubmissionFuzzTarget(),
    _ => throw new ArgumentException($"unknown target '{name}': dockerfile or submission"),
};
