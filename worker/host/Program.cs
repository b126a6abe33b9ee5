using Farm.Contracts;
using Farm.Worker.Telemetry;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Worker;

/// <summary>
/// The worker process: consumes <see cref="Contracts.BuildLayer"/> jobs from RabbitMQ. Settings come from
/// appsettings.json, environment variables (<c>Farm__Worker__Name</c>, <c>FARM_RABBITMQ</c>) and arguments
/// (<c>--Farm:Worker:Slots=2</c>). SIGTERM stops taking jobs and lets the running ones finish within the
/// shutdown timeout; an unfinished job is not acknowledged, so RabbitMQ hands it to another worker.
/// </summary>
public static partial class WorkerProgram
{
    public static async Task<int> Main(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddFarmWorkerProcess(builder.Configuration);
        using var host = builder.Build();
        var worker = host.Services.GetRequiredService<IOptions<WorkerOptions>>().Value;
        var rabbit = host.Services.GetRequiredService<IOptions<RabbitMqOptions>>().Value;
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Farm.Worker");
        LogStarting(logger, worker.Name, worker.Slots, worker.StateDirectory, rabbit);
        await host.RunAsync().ConfigureAwait(false);
        return 0;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Worker {Name} starting: {Slots} slots, state in {StateDirectory}, RabbitMQ {RabbitMq}")]
    private static partial void LogStarting(ILogger logger, string name, int slots, string stateDirectory, RabbitMqOptions rabbitMq);
}
