using System.ComponentModel.DataAnnotations;
using Farm.Contracts;
using Microsoft.Extensions.Configuration;

namespace Farm.Worker.Hosting;

/// <summary>
/// The one way a farm host reads settings while it is being composed (the silo's ports, the transport, the worker's
/// slots and metrics port: choices made before options can be resolved): bound from the section and validated now,
/// by the same data annotations that <c>ValidateOnStart</c> checks for the options resolved later.
/// </summary>
public static class FarmSettings
{
    /// <exception cref="InvalidSettingsException">A setting breaks its annotation (FARM4010).</exception>
    public static T Read<T>(IConfiguration configuration, string section, Action<T>? configure = null)
        where T : new()
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new T();
        configuration.GetSection(section).Bind(options);
        configure?.Invoke(options);
        var errors = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), errors, validateAllProperties: true))
        {
            throw new InvalidSettingsException($"invalid {section} settings: {string.Join("; ", errors.Select(e => e.ErrorMessage))}");
        }

        return options;
    }
}

/// <summary>FARM4010: a farm process's settings are invalid; the message names the section and the setting.</summary>
public sealed class InvalidSettingsException(string message)
    : FarmException(FarmErrorCodes.InvalidSettings, message);
